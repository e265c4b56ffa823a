{%- from "mysql/map.jinja" import mysql with context %}
# The primary holds the databases, users and grants (mysql.accounts); the replicas get them
# by replication. The accounts log in to the server, so every state there waits for it.
include:
  - mysql.server
  - mysql.accounts

extend:
  mariadb-service:
    # extend appends to requisites instead of replacing them
    service:
      - require_in:
        - sls: mysql.accounts

# Before mysql.accounts, the primary ran a rendered SQL script holding the passwords: gone.
mariadb-old-primary-sql:
  file.absent:
    - names:
      - {{ mysql.sql_dir }}/primary.sql
      - {{ mysql.sql_dir }}/primary.sql.applied
