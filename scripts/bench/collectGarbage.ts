/**
 * A full collection for the benchmark servers' memory readings, without `--expose-gc` on the command line: they run
 * built, from the code cache, and V8 would turn the cache down for a flag it was not written with.
 */
import * as V8 from "node:v8"
import * as Vm from "node:vm"

V8.setFlagsFromString("--expose-gc")

export const collectGarbage = Vm.runInNewContext("gc") as () => void
