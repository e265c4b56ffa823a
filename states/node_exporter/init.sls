{%- from "node_exporter/map.jinja" import node_exporter with context %}
# Every host exports its machine metrics on :9100 for prometheus (pillar prometheus:jobs:node).
{%- if node_exporter.repo %}
include:
  - prometheus.repo
{%- endif %}

node-exporter-pkg:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - name: {{ node_exporter.pkg }}
{%- if node_exporter.repo %}
    - require:
      - pkgrepo: prometheus-rpm-repo
{%- endif %}

node-exporter-service:
  service.running:
    - name: {{ node_exporter.service }}
    - enable: True
    - require:
      - pkg: node-exporter-pkg
