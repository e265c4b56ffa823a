{%- from "prometheus/map.jinja" import prometheus with context %}
{%- if prometheus.repo %}
include:
  - prometheus.repo
{%- endif %}

prometheus-pkg:
  pkg.installed:
    # what the service needs, no Recommends (prometheus-node-exporter alone would pull ~50
    # packages, among them openipmi and nvme-cli, whose units fail at boot in VMs)
    - install_recommends: False
    - name: {{ prometheus.pkg }}
{%- if prometheus.repo %}
    - require:
      - pkgrepo: prometheus-rpm-repo
{%- endif %}

# alerting rules: written before the config, because promtool checks the rule files the
# config names
prometheus-rules:
  file.managed:
    - name: {{ prometheus.rules_dir }}/stack.yml
    - source: salt://prometheus/files/stack-rules.yml
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: True
    - check_cmd: {{ prometheus.promtool }} check rules
    - require:
      - pkg: prometheus-pkg

prometheus-config:
  file.managed:
    - name: {{ prometheus.config }}
    - source: salt://prometheus/files/prometheus.yml.jinja
    - template: jinja
    - user: root
    - group: {{ prometheus.group }}
    - mode: '0640'
    - check_cmd: {{ prometheus.promtool }} check config
    - require:
      - pkg: prometheus-pkg
      - file: prometheus-rules

prometheus-service:
  service.running:
    - name: {{ prometheus.service }}
    - enable: True
    # prometheus re-reads its config and rules on SIGHUP
    - reload: True
    - require:
      - pkg: prometheus-pkg
    - watch:
      - file: prometheus-config
      - file: prometheus-rules
