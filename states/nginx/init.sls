{%- from "nginx/map.jinja" import nginx with context %}
nginx-pkg:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - name: {{ nginx.pkg }}

{%- if nginx.selinux_boolean %}
# SELinux (EL9, enforcing) forbids httpd_t to connect to the app tier's port 3000.
nginx-selinux:
  cmd.run:
    - name: setsebool -P {{ nginx.selinux_boolean }} 1
    - onlyif: selinuxenabled
    - unless: getsebool {{ nginx.selinux_boolean }} | grep -q ' on$'
    - require_in:
      - service: nginx-service
{%- endif %}

# The static site. /var/www carries httpd_sys_content_t on EL, and new files inherit it.
nginx-docroot:
  file.recurse:
    - name: {{ pillar['nginx']['docroot'] }}
    - source: salt://nginx/files/www
    - template: jinja
    - clean: True
    - user: root
    - group: root
    - dir_mode: '0755'
    - file_mode: '0644'

nginx-config:
  file.managed:
    - name: {{ nginx.config }}
    - source: salt://nginx/files/nginx.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    # every path in the file is absolute, so nginx can check the new file where it lies
    - check_cmd: {{ nginx.bin }} -t -c
    - require:
      - pkg: nginx-pkg

nginx-service:
  service.running:
    - name: {{ nginx.service }}
    - enable: True
    - reload: True
    - require:
      - pkg: nginx-pkg
      - file: nginx-docroot
    - watch:
      - file: nginx-config
