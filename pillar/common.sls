{%- from "stack.jinja" import hosts, network with context %}
# Every host: the inventory of the stack.
stack:
  network: {{ network }}
  hosts:
{%- for name, h in hosts | dictsort %}
    {{ name }}:
      ip: {{ h.ip }}
      roles: {{ h.roles }}
{%- endfor %}
