{%- from "stack.jinja" import hosts with context %}
app:
  user: app
  dir: /opt/app
  port: 3000
  mysql2_version: 3.11.3
  db:
    name: appdb
    user: app
    password: CHANGEME-app   # placeholder
    # writes go to the primary, reads to the replica (replication is asynchronous:
    # a read right after a write may not see it yet)
    write_host: {{ hosts.db1.ip }}
    read_host: {{ hosts.db2.ip }}
    port: 3306
