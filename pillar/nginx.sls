{%- from "stack.jinja" import hosts with context %}
nginx:
  listen: 80
  server_name: _
  docroot: /var/www/stack
  worker_connections: 1024
  # /api/ is proxied to the app tier; everything else is static
  api_upstream:
{%- for name, h in hosts | dictsort %}
{%- if 'app' in h.roles %}
    - hostname: {{ name }}
      ip: {{ h.ip }}
      port: 3000
{%- endif %}
{%- endfor %}
