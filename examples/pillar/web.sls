web:
  port: 80
  backends:
{%- for i in range(1, 4) %}
    - hostname: app{{ i }}
      ip: 10.0.0.{{ 10 + i }}
{%- endfor %}
