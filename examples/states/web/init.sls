{% from 'web/map.jinja' import web with context %}
include:
  - common

web_conf_dir:
  file.directory:
    - name: {{ web.conf_dir }}
    - makedirs: True
    - require:
      - file: /etc/tsalt-example

haproxy_cfg:
  file.managed:
    - name: {{ web.conf_dir }}/haproxy.cfg
    - source: salt://web/files/haproxy.cfg.j2
    - template: jinja
    - mode: '0640'
    - backends: {{ pillar['web']['backends'] }}
    - require:
      - web_conf_dir

reload_haproxy:
  cmd.run:
    - name: echo "haproxy.cfg changed, a real tree would reload haproxy here"
    - onchanges:
      - file: haproxy_cfg
