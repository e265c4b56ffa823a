webapp:
  enabled: true
  lookup:
    service:
      enable: {{ grains.os_family == 'Debian' }}
  release:
    tls:
      ciphers_override: {{ 'no' if grains.osmajorrelease|int >= 12 else 'yes' }}
  tofs:
    files_switch:
      - id
      - osfinger
      - os_family
