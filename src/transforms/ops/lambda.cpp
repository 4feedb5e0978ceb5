// Lambda(lambd): read, printed and exported, but not run: its Python code.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "a Lambda runs Python code, which cannot run here: the preview passes its input "
        "on and training refuses the pipeline. Replace it with the transform it stands "
        "for, or drop it (the loader already converts images to RGB)");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &lambdaTransform()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("Lambda"),
        .parameters = {req(QStringLiteral("lambd"))},
        .description = QStringLiteral("Python code (a lambda): shown, not run"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
