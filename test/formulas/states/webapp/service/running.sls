{%- set tplroot = tpldir.split('/')[0] %}
{%- set sls_config_file = tplroot ~ '.config.file' %}
{%- from tplroot ~ "/map.jinja" import mapdata as webapp with context %}

webapp-service-running-service-running:
  service.running:
    - name: {{ webapp.service.name }}
    - enable: {{ webapp.service.enable }}
    - watch:
      - file: webapp-config-file-file-managed
    {#- required by sls, not included here: Salt reports it as not found when this sls runs alone #}
    - require:
      - sls: {{ sls_config_file }}
