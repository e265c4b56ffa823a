/** Which agents are connected, fleet-wide, for what the CLI prints. */

/** Agents connected to this master or, masters sharing a store, to another live one. */
export async function fleetConnected(server: { connectedIds(): Set<string> }, elsewhere: (() => Promise<Map<string, string>>) | undefined): Promise<Set<string>> {
  const here = server.connectedIds();
  if (!elsewhere) return here;
  try {
    for (const id of (await elsewhere()).keys()) here.add(id);
  } catch {
    // the store did not answer: this master's own connections are still true
  }
  return here;
}
