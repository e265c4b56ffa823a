# Highstate: every VM gets the common base, the firewall (the ports of its roles, opened only
# where firewalld runs; listed before the roles so services start with their ports open) and
# node_exporter; the rest follows the `roles` grain (a list) that vagrant/bootstrap.sh writes to
# /etc/tsalt/grains. `match: grain` on a list grain matches when any element matches, as in Salt.
base:
  '*':
    - common
    - firewall
    - node_exporter
  'roles:haproxy':
    - match: grain
    - haproxy
  'roles:keepalived':
    - match: grain
    - keepalived
  'roles:nginx':
    - match: grain
    - nginx
  'roles:app':
    - match: grain
    - app
  'roles:mysql':
    - match: grain
    - mysql
  'roles:prometheus':
    - match: grain
    - prometheus
  'roles:grafana':
    - match: grain
    - grafana
