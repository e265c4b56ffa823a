{%- from "stack.jinja" import hosts with context %}
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
