#include "transforms/transformregistry.h"

#include "transforms/ops/ops.h"

#include <algorithm>

namespace ifs {

QList<TransformCategory> transformCategories()
{
    return {TransformCategory::SizeAndCrop,   TransformCategory::FlipAndGeometry,
            TransformCategory::ColourAndBlur, TransformCategory::Tensor,
            TransformCategory::Combine,       TransformCategory::Policies};
}

QString transformCategoryTitle(TransformCategory category)
{
    switch (category) {
    case TransformCategory::SizeAndCrop:
        return QStringLiteral("Size and crop");
    case TransformCategory::FlipAndGeometry:
        return QStringLiteral("Flip and geometry");
    case TransformCategory::ColourAndBlur:
        return QStringLiteral("Colour and blur");
    case TransformCategory::Tensor:
        return QStringLiteral("Tensor");
    case TransformCategory::Combine:
        return QStringLiteral("Combine transforms");
    case TransformCategory::Policies:
        return QStringLiteral("Augmentation policies");
    }
    return {};
}

int DatasetHints::side() const
{
    if (!typicalSize.isValid())
        return 224;
    const int shorter = std::min(typicalSize.width(), typicalSize.height());
    return shorter <= 64 ? shorter : 224;
}

const QList<const TransformDefinition *> &transformDefinitions()
{
#define IFS_LIST_TRANSFORM_OP(function) &ops::function(),
    static const QList<const TransformDefinition *> definitions{
        IFS_TRANSFORM_OPS(IFS_LIST_TRANSFORM_OP)};
#undef IFS_LIST_TRANSFORM_OP
    return definitions;
}

const TransformDefinition *findDefinition(const QString &name)
{
    for (const TransformDefinition *definition : transformDefinitions())
        if (definition->name == name)
            return definition;
    return nullptr;
}

QString transformDescription(const QString &name)
{
    const TransformDefinition *definition = findDefinition(name);
    return definition ? definition->description : QString();
}

bool isRandomTransform(const QString &name)
{
    if (const TransformDefinition *definition = findDefinition(name))
        return definition->random;
    return name.startsWith(QStringLiteral("Random"));
}

TransformStep newTransformStep(const QString &name, const DatasetHints &hints)
{
    TransformStep step{name, {}};
    const TransformDefinition *definition = findDefinition(name);
    if (!definition)
        return step;
    if (definition->newStep)
        step.args = definition->newStep(hints);
    // Anything else the signature requires gets a neutral value the form then shows.
    int given = 0;
    for (const TransformArgument &arg : std::as_const(step.args))
        given += arg.keyword.isEmpty() ? 1 : 0;
    for (const TransformParameter &p : definition->parameters)
        if (p.required && given-- <= 0)
            step.args.append({QString(), TransformValue::integer(1)});
    const Result<TransformStep> normalized = normalizeStep(step);
    return normalized ? normalized.value() : step;
}

} // namespace ifs
