# The prometheus-rpm repository (packagecloud): prometheus2, node_exporter and other
# exporters for EL. Only included on RedHat-family hosts (see prometheus/map.jinja).
prometheus-rpm-repo:
  pkgrepo.managed:
    - name: prometheus-rpm
    - humanname: Prometheus RPMs (prometheus-rpm)
    - baseurl: https://packagecloud.io/prometheus-rpm/release/el/$releasever/$basearch
    - gpgcheck: 1
    - repo_gpgcheck: 1
    - gpgkey: https://packagecloud.io/prometheus-rpm/release/gpgkey
    - enabled: 1
