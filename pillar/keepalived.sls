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
  # haproxy's monitor URI, polled every second. weight 0: one failure puts this node in FAULT
  # state, which sends a priority-0 advert, and the peer takes the VIP at once (about 0.6 s)
  # instead of waiting out the master-down timer (3 adverts) that a lowered priority would.
  # (keepalived's track_process would see the exit sooner, but needs the kernel's process
  # connector, which containers do not get.)
  check_script:
    path: /usr/libexec/keepalived/check_haproxy.sh
    interval: 1
    fall: 1
    rise: 2
    weight: 0
