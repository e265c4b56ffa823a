# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as webapp with context %}

{%- if webapp.repo is defined %}
webapp-package-repo-managed:
  pkgrepo.managed:
    {%- for k, v in webapp.repo | dictsort %}
    - {{ k }}: {{ v | json }}
    {%- endfor %}
    - require_in:
      - pkg: webapp-package-install-pkg-installed
{%- endif %}

webapp-package-install-pkg-installed:
  pkg.installed:
    - name: {{ webapp.pkg.name }}
