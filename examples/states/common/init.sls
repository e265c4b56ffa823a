# Files every host gets. Paths are absolute as in a real tree; `--root` rebases them.
/etc/motd:
  file.managed:
    - contents: |
        {{ grains['id'] }} is managed by tsalt. Local changes will be overwritten.
    - mode: '0644'
    - makedirs: True

/etc/tsalt-example:
  file.directory:
    - mode: 755
    - makedirs: True
