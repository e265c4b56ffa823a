# Pillar is matched the way states are: by the `roles` grain each VM carries in
# /etc/tsalt/grains (written by vagrant/bootstrap.sh). A host only receives the keys for
# its own roles, so e.g. MySQL passwords never reach the load balancers.
base:
  '*':
    - common
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
