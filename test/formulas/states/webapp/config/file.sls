# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- set sls_package_install = tplroot ~ '.package.install' %}
{%- from tplroot ~ "/map.jinja" import mapdata as webapp with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}

include:
  - {{ sls_package_install }}

webapp-config-file-file-managed:
  file.managed:
    - name: {{ webapp.config }}
    - source: {{ files_switch(['webapp.conf', 'webapp.conf.jinja'],
                              lookup='webapp-config-file-file-managed',
                 )
              }}
    - mode: '{{ webapp.config_mode }}'
    - user: root
    - group: {{ webapp.rootgroup }}
    - makedirs: True
    - template: jinja
    - require:
      - sls: {{ sls_package_install }}
    - context:
        webapp: {{ webapp | json }}
        features: {{ webapp.features | join(',') }}
