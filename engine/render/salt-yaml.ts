// Salt's YAML reader/writer lives in core/salt-yaml.ts: config files are read with it too (one
// YAML dialect for everything); re-exported here for the renderer and the states.
export * from '../../core/salt-yaml.js';
