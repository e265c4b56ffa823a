{%- from "stack.jinja" import hosts, network with context %}
keepalived:
  vrrp_instances:
    VI_WEB:
      # no `interface:`: the states use the interface holding the host's inventory address
      # (keepalived/map.jinja, from the ip_interfaces grain); set one here to override it
      virtual_router_id: 51
      advert_int: 1
      # highest priority is MASTER at start; the other starts as BACKUP
      priorities:
        lb1: 150
        lb2: 100
      # unicast VRRP between the two LBs (multicast is unreliable on virtual switches)
      peers:
{%- for name, h in hosts | dictsort %}
{%- if 'keepalived' in h.roles %}
        {{ name }}: {{ h.ip }}
{%- endif %}
{%- endfor %}
      auth_pass: CHANGEME   # placeholder: VRRP PASS auth uses the first 8 characters
      vip: {{ network.vip }}/{{ network.prefix }}
  check_script:
    path: /usr/libexec/keepalived/check_haproxy.sh
    interval: 2
    fall: 2
    rise: 2
    # a failing check lowers priority below the peer's, so the VIP moves
    weight: -60
