{%- from "stack.jinja" import hosts, network with context %}
mysql:
  bind_address: 0.0.0.0
  port: 3306
  # GTID replication: one primary, replicas pull from it with MASTER_USE_GTID=slave_pos
  replication:
    primary: db1
    primary_host: {{ hosts.db1.ip }}
    user: repl
    password: CHANGEME-repl   # placeholder
    # server_id must be unique per server
    server_ids:
      db1: 1
      db2: 2
  databases:
    - appdb
  # created on the primary; they reach the replica through replication. Their host is the
  # inventory's network (stack.jinja), so the app servers and the replica may log in.
  users:
    app:
      host: '{{ network.sql_host }}'
      password: CHANGEME-app   # placeholder: must match app:db:password
      grants:
        - database: appdb
          privileges: ALL PRIVILEGES
        # SHOW SLAVE STATUS on the replica: the app reports replication lag on /api/health
        - database: '*'
          privileges: SLAVE MONITOR
    repl:
      host: '{{ network.sql_host }}'
      password: CHANGEME-repl   # placeholder: must match mysql:replication:password
      grants:
        - database: '*'
          privileges: REPLICATION SLAVE
