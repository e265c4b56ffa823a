// Preloaded (`node --require`) by bench/w54-cpu.mjs: writes this process's whole CPU time
// (getrusage of the process since exec, user+sys, in µs) to $TSALT_BENCH_CPU_FILE at exit.
// GNU time's figures come in 10 ms steps; a W54 run's changes are a few ms.
'use strict';
process.on('exit', () => {
  const u = process.resourceUsage();
  require('node:fs').writeFileSync(process.env.TSALT_BENCH_CPU_FILE, `${u.userCPUTime + u.systemCPUTime}\n`);
});
