/**
 * The simulator's HTTP server. Interface only so far: the implementation lands with the
 * simulator work (OpenAI, Anthropic and Gemini wire protocols on loopback).
 */
export interface SimulatorOptions {
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  host?: string;
  /** Let the process exit while the server is still listening (embedded use). */
  unref?: boolean;
  /** Multiplies every delay; 0 answers at once. Default from SWITCHBOARD_SIM_TIME_SCALE, else 1. */
  timeScale?: number;
  /** Share of sim-flaky requests that fail. Default from SWITCHBOARD_SIM_FAIL_RATE, else the profile's. */
  failRate?: number;
}

export interface RunningSimulator {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  close(): Promise<void>;
}

export async function startSimulator(_options: SimulatorOptions = {}): Promise<RunningSimulator> {
  throw new Error('simulator not implemented yet');
}
