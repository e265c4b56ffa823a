{%- from "keepalived/map.jinja" import keepalived with context %}
{%- set check = pillar['keepalived']['check_script'] %}
include:
  - haproxy

keepalived-pkg:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - name: {{ keepalived.pkg }}

# The VRRP health check: keepalived lowers this node's priority while it fails.
keepalived-check-script:
  file.managed:
    - name: {{ check.path }}
    - source: salt://keepalived/files/check_haproxy.sh.jinja
    - template: jinja
    - user: root
    - group: root
    # enable_script_security refuses scripts that a non-root user could modify
    - mode: '0755'
    - makedirs: True
    - dir_mode: '0755'

{%- if keepalived.selinux %}
# The EL policy labels /usr/libexec/keepalived/* keepalived_unconfined_script_exec_t (so the
# check may run curl); a file written by rename keeps its temp file's label until restorecon.
keepalived-check-script-label:
  cmd.run:
    - name: restorecon {{ check.path }}
    - onlyif: selinuxenabled
    - onchanges:
      - file: keepalived-check-script
    - require_in:
      - service: keepalived-service
{%- endif %}

{%- set unplaced = [] %}
{%- for name, vi in pillar['keepalived']['vrrp_instances'] | dictsort %}
{%- if not (vi.get('interface') or keepalived.interface) %}{% do unplaced.append(name) %}{% endif %}
{%- endfor %}
{%- if unplaced | length %}
# No interface holds this host's inventory address: a config naming none would not load.
keepalived-interface:
  test.fail_without_changes:
    - comment: >-
        keepalived: no network interface holds this host's inventory address
        '{{ keepalived.inventory_ip }}' (pillar stack:hosts:{{ grains['id'] }}:ip; grain
        ip_interfaces: {{ salt['grains.get']('ip_interfaces', {}) | json }}); VRRP instances
        {{ unplaced | join(', ') }} need it, or pillar keepalived:vrrp_instances:<name>:interface
    - require_in:
      - file: keepalived-config
{%- endif %}

{%- if pillar['keepalived'].get('track_file') %}
# HAProxy's unit tells keepalived when it stops or dies (and runs again) through the file
# keepalived tracks: the VIP moves at once instead of at the next check_script run.
keepalived-haproxy-dropin:
  file.managed:
    - name: /etc/systemd/system/{{ keepalived.haproxy_service }}.service.d/keepalived-track.conf
    - source: salt://keepalived/files/haproxy-track.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: True
    - dir_mode: '0755'
    # systemd reads it on the daemon-reload before haproxy's next start or reload
    - watch_in:
      - service: haproxy-service
{%- endif %}

keepalived-config:
  file.managed:
    - name: {{ keepalived.config }}
    - source: salt://keepalived/files/keepalived.conf.jinja
    - template: jinja
    - user: root
    - group: root
    # holds the VRRP password
    - mode: '0600'
    - check_cmd: {{ keepalived.bin }} --config-test -f
    - require:
      - pkg: keepalived-pkg
      - file: keepalived-check-script

keepalived-service:
  service.running:
    - name: {{ keepalived.service }}
    - enable: True
    - require:
      - service: haproxy-service
    - watch:
      - file: keepalived-config
      - file: keepalived-check-script
