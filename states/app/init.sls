{%- from "app/map.jinja" import app as map with context %}
{%- set app = pillar['app'] %}
app-user:
  user.present:
    - name: {{ app.user }}
    - system: True
    - home: {{ app.dir }}
    - createhome: False
    - shell: {{ map.nologin }}

app-dir:
  file.directory:
    - name: {{ app.dir }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

# The MySQL driver; npm keeps /opt/app/package.json itself, so the code lives in src/
# (Node finds /opt/app/node_modules from there) and file.recurse never fights npm.
app-deps:
  npm.installed:
    - name: mysql2@{{ app.mysql2_version }}
    - dir: {{ app.dir }}
{#- pillar app:npm_registry (a mirror) and app:npm_env (e.g. npm_config_cache +
    npm_config_offline for a host without a registry) #}
{%- if app.get('npm_registry') %}
    - registry: {{ app.npm_registry | yaml_encode }}
{%- endif %}
{%- if app.get('npm_env') %}
    - env: {{ app.npm_env | json }}
{%- endif %}
    - require:
      - file: app-dir

app-src:
  file.recurse:
    - name: {{ app.dir }}/src
    - source: salt://app/files/src
    - clean: True
    - user: root
    - group: root
    - dir_mode: '0755'
    - file_mode: '0644'
    - require:
      - file: app-dir

# database settings and password: readable by the app user only
app-env:
  file.managed:
    - name: /etc/app/app.env
    - source: salt://app/files/app.env.jinja
    - template: jinja
    - user: root
    - group: {{ app.user }}
    - mode: '0640'
    - makedirs: True
    - require:
      - user: app-user

app-unit:
  file.managed:
    - name: /etc/systemd/system/app.service
    - source: salt://app/files/app.service.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'

app-service:
  service.running:
    - name: app
    - enable: True
    - require:
      - user: app-user
    - watch:
      - file: app-unit
      - file: app-env
      - file: app-src
      - npm: app-deps
