{%- from "grafana/map.jinja" import grafana with context %}
grafana-repo:
  pkgrepo.managed:
{%- for key, value in grafana.repo | dictsort %}
    - {{ key }}: {{ value }}
{%- endfor %}

grafana-pkg:
  pkg.installed:
    - name: {{ grafana.pkg }}
    - require:
      - pkgrepo: grafana-repo

# A short grafana.ini: everything not set here keeps Grafana's built-in defaults.
grafana-config:
  file.managed:
    - name: {{ grafana.config }}
    - source: salt://grafana/files/grafana.ini.jinja
    - template: jinja
    - user: root
    - group: {{ grafana.group }}
    - mode: '0640'
    - require:
      - pkg: grafana-pkg

# Prometheus as the default data source, provisioned at start
grafana-datasources:
  file.managed:
    - name: {{ grafana.provisioning }}/datasources/tsalt.yaml
    - source: salt://grafana/files/datasources.yaml.jinja
    - template: jinja
    - user: root
    - group: {{ grafana.group }}
    - mode: '0640'
    - makedirs: True
    - require:
      - pkg: grafana-pkg

# The tsalt fleet dashboard (the master's metrics), provisioned from files
grafana-dashboard-provider:
  file.managed:
    - name: {{ grafana.provisioning }}/dashboards/tsalt.yaml
    - source: salt://grafana/files/dashboards.yaml
    - user: root
    - group: {{ grafana.group }}
    - mode: '0640'
    - makedirs: True
    - require:
      - pkg: grafana-pkg

grafana-dashboard-tsalt:
  file.managed:
    - name: /var/lib/grafana/dashboards/tsalt/tsalt-fleet.json
    - source: salt://grafana/files/tsalt-fleet.json
    - user: root
    - group: {{ grafana.group }}
    - mode: '0640'
    - makedirs: True
    - require:
      - pkg: grafana-pkg

grafana-service:
  service.running:
    - name: {{ grafana.service }}
    - enable: True
    - require:
      - pkg: grafana-pkg
    - watch:
      - file: grafana-config
      - file: grafana-datasources
      - file: grafana-dashboard-provider
      - file: grafana-dashboard-tsalt
