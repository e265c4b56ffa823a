{%- from "firewall/map.jinja" import tcp_ports, protocols with context %}
{#- firewalld, handled like SELinux in the role states: a firewall-cmd command that runs only
    where firewalld is running (`onlyif`), and only while the port or protocol is missing from
    the runtime or the permanent configuration (`unless`), so a second run does nothing. Where
    firewall-cmd is absent or firewalld stopped, every state here is skipped. Ports are opened
    in the default zone for any source: no source restriction (see firewall/map.jinja). Listed
    before the roles in top.sls, so the ports are open by the time the services start. -#}
{%- for port, roles in tcp_ports | dictsort %}

# {{ roles | join(', ') }}
firewall-tcp-{{ port }}:
  cmd.run:
    - name: firewall-cmd --add-port={{ port }}/tcp && firewall-cmd --permanent --add-port={{ port }}/tcp
    - onlyif: firewall-cmd --state
    - unless: firewall-cmd --query-port={{ port }}/tcp && firewall-cmd --permanent --query-port={{ port }}/tcp
{%- endfor %}
{%- for proto, roles in protocols | dictsort %}

# {{ roles | join(', ') }}
firewall-protocol-{{ proto }}:
  cmd.run:
    - name: firewall-cmd --add-protocol={{ proto }} && firewall-cmd --permanent --add-protocol={{ proto }}
    - onlyif: firewall-cmd --state
    - unless: firewall-cmd --query-protocol={{ proto }} && firewall-cmd --permanent --query-protocol={{ proto }}
{%- endfor %}
