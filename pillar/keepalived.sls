{%- from "stack.jinja" import hosts, network with context %}
keepalived:
  vrrp_instances:
    VI_WEB:
      # no `interface:`: the states use the interface holding the host's inventory address
      # (keepalived/map.jinja, from the ip_interfaces grain); set one here to override it
      virtual_router_id: 51
      advert_int: 1
      # highest priority is MASTER at start; the other starts as BACKUP. Both high: when the
      # master gives up (a priority-0 advert) the backup waits only its skew time,
      # (256 - priority) / 256 s: 62 ms at 240 (0.61 s at 100)
      priorities:
        lb1: 250
        lb2: 240
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
  # ... and haproxy's unit tells keepalived itself when it stops or dies: a systemd drop-in
  # (keepalived/init.sls) writes 1 to this file after HAProxy exits and 0 once it runs again;
  # keepalived watches the file (inotify) and goes to FAULT at once, not at the next check.
  track_file:
    path: /run/keepalived-haproxy-stopped
  check_script:
    path: /usr/libexec/keepalived/check_haproxy.sh
    interval: 1
    fall: 1
    rise: 2
    weight: 0
