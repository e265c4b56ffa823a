{%- from "node_exporter/map.jinja" import node_exporter with context %}
# Every host exports its machine metrics on :9100 for prometheus (pillar prometheus:jobs:node).
{%- if node_exporter.repo %}
include:
  - prometheus.repo
{%- endif %}

node-exporter-pkg:
  pkg.installed:
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
