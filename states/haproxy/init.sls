{%- from "haproxy/map.jinja" import haproxy with context %}
haproxy-pkg:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - name: {{ haproxy.pkg }}

{%- if haproxy.selinux_boolean %}
# SELinux (EL9, enforcing) keeps haproxy off ports that are not labelled http: the stats and
# monitor frontends (8405, 8406) need this boolean.
haproxy-selinux:
  cmd.run:
    - name: setsebool -P {{ haproxy.selinux_boolean }} 1
    - onlyif: selinuxenabled
    - unless: getsebool {{ haproxy.selinux_boolean }} | grep -q ' on$'
    - require_in:
      - service: haproxy-service
{%- endif %}

haproxy-config:
  file.managed:
    - name: {{ haproxy.config }}
    - source: salt://haproxy/files/haproxy.cfg.jinja
    - template: jinja
    - user: root
    - group: {{ haproxy.group }}
    - mode: '0640'
    # the new file replaces the live one only when haproxy accepts it
    - check_cmd: {{ haproxy.bin }} -c -f
    - require:
      - pkg: haproxy-pkg

haproxy-service:
  service.running:
    - name: {{ haproxy.service }}
    - enable: True
    # haproxy reloads without dropping connections
    - reload: True
    - require:
      - pkg: haproxy-pkg
    - watch:
      - file: haproxy-config
