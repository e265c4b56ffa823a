grafana:
  admin_password: CHANGEME-grafana   # placeholder
  http_port: 3000
  datasources:
    - name: Prometheus
      type: prometheus
      url: http://127.0.0.1:9090
      default: true
