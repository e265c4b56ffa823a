{%- from "mysql/map.jinja" import mysql with context %}
{%- set my = pillar['mysql'] %}
{#- Databases, users and grants from pillar mysql:databases and mysql:users. The states log in
    as root over the unix socket (Salt's default connection); pillar mysql:socket names another
    socket. The server must be up first: mysql.primary requires the service for this file. -#}
{%- macro connection() %}
{%- if mysql.socket %}
    - connection_unix_socket: {{ mysql.socket|yaml_encode }}
{%- endif %}
{%- endmacro %}

{%- for db in my.databases %}

mysql-database-{{ db }}:
  mysql_database.present:
    - name: {{ db|yaml_encode }}
{{- connection() }}
{%- endfor %}

{%- for name, u in my.users|dictsort %}

mysql-user-{{ name }}:
  mysql_user.present:
    - name: {{ name|yaml_encode }}
    - host: {{ u.host|yaml_encode }}
    - password: {{ u.password|yaml_encode }}
{{- connection() }}
{%- for g in u.grants %}
{#- pillar says '*' for every database, otherwise a database name: all its tables #}
{%- set level = '*.*' if g.database == '*' else g.database ~ '.*' %}

mysql-grants-{{ name }}-{{ g.database }}:
  mysql_grants.present:
    - grant: {{ g.privileges|yaml_encode }}
    - database: {{ level|yaml_encode }}
    - user: {{ name|yaml_encode }}
    - host: {{ u.host|yaml_encode }}
{{- connection() }}
    - require:
      - mysql_user: mysql-user-{{ name }}
{%- if g.database in my.databases %}
      - mysql_database: mysql-database-{{ g.database }}
{%- endif %}
{%- endfor %}
{%- endfor %}
