export {
  type DemoDecision,
  DemoPolicyError,
  type DemoPolicyOptions,
  demoDecision,
  demoDraw,
  demoPolicy,
  findDemoOrder,
  GIVE_UP_REPLY,
  sampleTestCommand,
  UNKNOWN_ORDER_REPLY,
} from "./demo-policy.ts";
export {
  type DemoOrder,
  demoOrders,
  demoPackageJson,
  demoProject,
  demoProjectFiles,
  demoTestCommand,
  resolveTsxLoader,
} from "./demo-scenario.ts";
export { seededDraw } from "./draw.ts";
export { SimulatorError } from "./errors.ts";
export {
  ESCAPE_COMMANDS,
  ESCAPE_READS,
  FAILURE_MODES,
  type FailureMode,
  type FailureModeOptions,
  withFailureModes,
} from "./failure-modes.ts";
export {
  FAULT_KINDS,
  type FaultInput,
  type FaultKind,
  type FaultSpec,
  normalizeFault,
  type SimulatorFaults,
} from "./faults.ts";
export {
  MELTDOWN_SCRIPTS,
  type MeltdownOptions,
  type MeltdownScript,
  withMeltdowns,
} from "./meltdowns.ts";
export {
  conversationTurn,
  messagesText,
  type Policy,
  type PolicyContext,
  type PolicyReply,
  type PolicyToolCall,
  scriptedPolicy,
} from "./policy.ts";
export { PROTOCOL_NAMES, type ProtocolName } from "./protocols.ts";
export {
  expectationMismatches,
  loadScenario,
  parseScenario,
  type Scenario,
  ScenarioError,
  type ScenarioExpectation,
  type ScenarioStep,
  scenarioFromValue,
  scenarioPolicy,
} from "./scenario.ts";
export {
  createSimulatorApp,
  createStats,
  type ProtocolStats,
  type RunningSimulator,
  type SimulatorLatency,
  type SimulatorOptions,
  type SimulatorStats,
  type StartSimulatorOptions,
  startSimulator,
} from "./server.ts";
export { STAND_IN_REPLY, standInPolicy } from "./stand-in-policy.ts";
