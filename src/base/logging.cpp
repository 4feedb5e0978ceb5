#include "base/logging.h"

Q_LOGGING_CATEGORY(lcDataset, "ifs.dataset", QtInfoMsg)
Q_LOGGING_CATEGORY(lcImage, "ifs.image", QtInfoMsg)
Q_LOGGING_CATEGORY(lcHealth, "ifs.health", QtInfoMsg)
Q_LOGGING_CATEGORY(lcSampleData, "ifs.sampledata", QtInfoMsg)
Q_LOGGING_CATEGORY(lcRuntime, "ifs.runtime", QtInfoMsg)
