// LinearTransformation(transformation_matrix, mean_vector): read, printed and exported, but not
// run: its matrix is a torch tensor.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "its matrix and mean are torch tensors (usually a ZCA whitening computed in "
        "Python), which a pipeline here cannot hold: whiten in your own code after "
        "loading, or use Normalize");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &linearTransformation()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("LinearTransformation"),
        .parameters
        = {req(QStringLiteral("transformation_matrix")), req(QStringLiteral("mean_vector"))},
        .description = QStringLiteral("Multiply by a matrix (whitening): shown, not run"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
