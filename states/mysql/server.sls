{%- from "mysql/map.jinja" import mysql with context %}
mariadb-pkgs:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - pkgs:
      - {{ mysql.server_pkg }}
      - {{ mysql.client_pkg }}

# check_cmd for option files: mariadbd parses a file and reports unknown or bad options
# without starting the server. (No --validate-config before MariaDB 11.)
mariadb-check-cnf:
  file.managed:
    - name: {{ mysql.check_cnf }}
    - source: salt://mysql/files/check-mariadb-cnf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

mariadb-config:
  file.managed:
    - name: {{ mysql.config }}
    - source: salt://mysql/files/server.cnf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - check_cmd: {{ mysql.check_cnf }}
    - require:
      - pkg: mariadb-pkgs
      - file: mariadb-check-cnf

mariadb-service:
  service.running:
    - name: {{ mysql.service }}
    - enable: True
    - require:
      - pkg: mariadb-pkgs
    - watch:
      - file: mariadb-config

# SQL files hold passwords: root only
mariadb-sql-dir:
  file.directory:
    - name: {{ mysql.sql_dir }}
    - user: root
    - group: root
    - mode: '0700'
