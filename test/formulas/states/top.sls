base:
  '*':
    - webapp
    - webapp._mapdata
