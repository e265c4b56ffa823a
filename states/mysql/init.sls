# MariaDB with GTID replication: the host named in mysql:replication:primary gets the
# databases and users; every other mysql host replicates from it (read_only).
include:
  - mysql.server
{%- if grains['id'] == pillar['mysql']['replication']['primary'] %}
  - mysql.primary
{%- else %}
  - mysql.replica
{%- endif %}
