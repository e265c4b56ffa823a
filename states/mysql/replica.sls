{%- from "mysql/map.jinja" import mysql with context %}
include:
  - mysql.server

mariadb-replica-sql:
  file.managed:
    - name: {{ mysql.sql_dir }}/replica.sql
    - source: salt://mysql/files/replica.sql.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0600'
    - require:
      - file: mariadb-sql-dir

# Points the replica at the primary with GTID (MASTER_USE_GTID=slave_pos) and starts it.
# Re-run only when the settings change; the primary need not be up yet (the IO thread retries).
mariadb-replica-apply:
  cmd.run:
    - name: mysql --batch < {{ mysql.sql_dir }}/replica.sql && cp {{ mysql.sql_dir }}/replica.sql {{ mysql.sql_dir }}/replica.sql.applied
    - unless: cmp -s {{ mysql.sql_dir }}/replica.sql {{ mysql.sql_dir }}/replica.sql.applied
    - require:
      - service: mariadb-service
      - file: mariadb-replica-sql
