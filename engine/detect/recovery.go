package detect
const defaultRecoveryErrorRate = 1e-3
