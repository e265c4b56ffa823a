{%- from "stack.jinja" import hosts, master with context %}
prometheus:
  scrape_interval: 15s
  # one job per exporter; targets come from the inventory
  jobs:
    node:
      port: 9100
      targets:
{%- for name, h in hosts | dictsort %}
        - hostname: {{ name }}
          ip: {{ h.ip }}
{%- endfor %}
    haproxy:
      port: 8405
      targets:
{%- for name, h in hosts | dictsort %}
{%- if 'haproxy' in h.roles %}
        - hostname: {{ name }}
          ip: {{ h.ip }}
{%- endif %}
{%- endfor %}
  # the tsalt master's own /metrics. Not one of `jobs`: the master is no managed host, so its
  # endpoint and firewall port are set up by vagrant/bootstrap.sh, not by the firewall states.
  tsalt_master:
    hostname: {{ master.name }}
    ip: {{ master.ip }}
    port: 9506
