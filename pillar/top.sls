{#- Pillar is matched by agent id, from the inventory in stack.jinja: an agent's id is proven by
    its TLS key, while grains (roles) are what the agent says about itself. Matching secrets on
    grains would let any VM that claims `roles: [mysql]` read the MySQL passwords (Salt's docs
    give the same advice). States may still match on roles: they hold no secrets. -#}
{%- from 'stack.jinja' import hosts %}
{#- role pillar files grouped by the exact list of hosts that carry the role -#}
{%- set targets = {} %}
{%- for role in ['haproxy', 'keepalived', 'nginx', 'app', 'mysql', 'prometheus', 'grafana'] %}
{%- set ids = [] %}
{%- for id, h in hosts | dictsort %}{% if role in h.roles %}{% do ids.append(id) %}{% endif %}{% endfor %}
{%- do targets.setdefault(ids | join(','), []).append(role) %}
{%- endfor %}
base:
  '*':
    - common
{%- for ids, roles in targets.items() %}
  '{{ ids }}':
    - match: list
{%- for role in roles %}
    - {{ role }}
{%- endfor %}
{%- endfor %}
