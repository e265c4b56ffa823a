{%- from "mysql/map.jinja" import mysql with context %}
include:
  - mysql.server

# Databases, users and grants as one idempotent SQL script (CREATE ... IF NOT EXISTS,
# ALTER USER for passwords). root reaches the server over the unix socket without a password.
mariadb-primary-sql:
  file.managed:
    - name: {{ mysql.sql_dir }}/primary.sql
    - source: salt://mysql/files/primary.sql.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0600'
    - require:
      - file: mariadb-sql-dir

# Runs until the script that was applied last is the current one: a failed run is retried
# on the next apply (onchanges alone would forget it).
mariadb-primary-apply:
  cmd.run:
    - name: mysql --batch < {{ mysql.sql_dir }}/primary.sql && cp {{ mysql.sql_dir }}/primary.sql {{ mysql.sql_dir }}/primary.sql.applied
    - unless: cmp -s {{ mysql.sql_dir }}/primary.sql {{ mysql.sql_dir }}/primary.sql.applied
    - require:
      - service: mariadb-service
      - file: mariadb-primary-sql
