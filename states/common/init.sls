{%- from "common/map.jinja" import common with context %}
# The base every VM gets. curl is also what keepalived's check script uses.
common-packages:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - pkgs: {{ common.packages }}

/etc/motd:
  file.managed:
    - contents: |
        {{ grains['id'] }}: managed by tsalt (roles: {{ salt['grains.get']('roles', []) | join(', ') }}).
        Local changes to managed files are overwritten on the next apply.
    - user: root
    - group: root
    - mode: '0644'
