export {
  type DemoDecision,
  DemoPolicyError,
  type DemoPolicyOptions,
  demoDecision,
  demoDraw,
  demoPolicy,
  findDemoOrder,
  GIVE_UP_REPLY,
  UNKNOWN_ORDER_REPLY,
} from "./demo-policy.ts";
export {
  type DemoOrder,
  demoOrders,
  demoPackageJson,
  demoProject,
  demoProjectFiles,
  resolveTsxLoader,
} from "./demo-scenario.ts";
export {
  conversationTurn,
  messagesText,
  type Policy,
  type PolicyContext,
  type PolicyReply,
  type PolicyToolCall,
  SimulatorError,
  scriptedPolicy,
} from "./policy.ts";
export {
  createSimulatorApp,
  createStats,
  type RunningSimulator,
  type SimulatorLatency,
  type SimulatorOptions,
  type SimulatorStats,
  type StartSimulatorOptions,
  startSimulator,
} from "./server.ts";
