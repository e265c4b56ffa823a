{%- from "stack.jinja" import hosts, network with context %}
haproxy:
  # Clients reach the stack on the keepalived VIP; the LBs also answer on their own address.
  frontend:
    listen: '*:80'
  # HAProxy's built-in Prometheus exporter (USE_PROMEX, in EL9 and Debian 12 builds)
  stats:
    listen: '*:8405'
    uri: /stats
  # the health endpoint keepalived's check script asks (frontend answers 200 while haproxy lives)
  monitor:
    listen: '127.0.0.1:8406'
    uri: /healthz
  balance: roundrobin
  maxconn: 4096
  timeouts:
    connect: 5s
    client: 30s
    server: 30s
  backends:
{%- for name, h in hosts | dictsort %}
{%- if 'nginx' in h.roles %}
    - hostname: {{ name }}
      ip: {{ h.ip }}
      port: 80
{%- endif %}
{%- endfor %}
