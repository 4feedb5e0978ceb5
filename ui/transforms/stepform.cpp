#include "transforms/stepform.h"

#include "transforms/pipelinemodel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QRegularExpression>
#include <QSpinBox>
#include <QVBoxLayout>

#include <cmath>

namespace ifs {

namespace {

using V = TransformValue;

const QStringList &interpolationNames()
{
    static const QStringList names{
        QStringLiteral("NEAREST"), QStringLiteral("NEAREST_EXACT"), QStringLiteral("BILINEAR"),
        QStringLiteral("BICUBIC"), QStringLiteral("BOX"),           QStringLiteral("HAMMING"),
        QStringLiteral("LANCZOS"),
    };
    return names;
}

bool isNumber(const V &v)
{
    return v.kind == V::Kind::Int || v.kind == V::Kind::Float;
}

double number(const V &v)
{
    return v.kind == V::Kind::Int ? double(v.intValue) : v.floatValue;
}

bool isNumberPair(const V &v)
{
    return (v.kind == V::Kind::Tuple || v.kind == V::Kind::List) && v.items.size() == 2
        && isNumber(v.items[0]) && isNumber(v.items[1]);
}

double rounded(double value, int decimals)
{
    const double scale = std::pow(10.0, decimals);
    return std::round(value * scale) / scale;
}

/// The spin box's value, or `original` when the box still shows original's rounded value (so
/// 4/3 does not become 1.3333 because a neighbouring field changed).
V spinValue(const QDoubleSpinBox *spin, const V &original)
{
    if (isNumber(original) && rounded(number(original), spin->decimals()) == spin->value())
        return original;
    return V::real(spin->value());
}

QDoubleSpinBox *makeDoubleSpin(QWidget *parent, double min, double max, int decimals, double step)
{
    auto *spin = new QDoubleSpinBox(parent);
    spin->setRange(min, max);
    spin->setDecimals(decimals);
    spin->setSingleStep(step);
    spin->setKeyboardTracking(false);
    spin->setAccelerated(true);
    return spin;
}

/// The value of each parameter given explicitly in a normalized step, by name.
QHash<QString, V> explicitArguments(const TransformSignature &signature, const TransformStep &step)
{
    QHash<QString, V> values;
    int positional = 0;
    for (const TransformArgument &arg : step.args) {
        if (!arg.keyword.isEmpty()) {
            values.insert(arg.keyword, arg.value);
            continue;
        }
        if (positional < signature.parameters.size())
            values.insert(signature.parameters[positional].name, arg.value);
        ++positional;
    }
    return values;
}

} // namespace

Result<TransformValue> parsePythonLiteral(const QString &text)
{
    // Borrow the pipeline parser: a literal is the one argument of a call. The extra
    // parentheses make "1, 2" the tuple Python reads; the newline ends a trailing comment.
    const QString prefix = QStringLiteral("Pad((");
    const Result<TransformPipeline> parsed
        = parseTransforms(prefix + text + QStringLiteral("\n))"));
    if (!parsed) {
        QString message = parsed.errorMessage().section(u'\n', 0, 0);
        static const QRegularExpression where(
            QStringLiteral("^(.*) at line (\\d+), column (\\d+)(.*)$"));
        const QRegularExpressionMatch match = where.match(message);
        if (match.hasMatch()) {
            const int line = match.captured(2).toInt();
            const int column = match.captured(3).toInt() - int(prefix.size());
            const QString place = line == 1 && column >= 1
                ? QStringLiteral("at column %1").arg(column)
                : QStringLiteral("at the end");
            message = match.captured(1) + u' ' + place + match.captured(4);
        }
        return Error{message};
    }
    if (parsed->steps.size() != 1 || parsed->steps[0].args.size() != 1
        || !parsed->steps[0].args[0].keyword.isEmpty())
        return Error{QStringLiteral("Write one Python value, e.g. 224, (0.5, 1.0) or None")};
    return parsed->steps[0].args[0].value;
}

StepForm::StepForm(QWidget *parent)
    : QWidget(parent)
    , m_title(new QLabel(this))
    , m_description(new QLabel(this))
    , m_formHost(new QWidget(this))
    , m_problem(new QLabel(this))
    , m_empty(new QLabel(tr("Select a step to edit its parameters."), this))
{
    setObjectName(QStringLiteral("stepForm"));
    QFont bold = m_title->font();
    bold.setBold(true);
    m_title->setFont(bold);
    m_description->setWordWrap(true);
    m_description->setStyleSheet(QStringLiteral("color: palette(mid);"));
    m_problem->setObjectName(QStringLiteral("stepProblem"));
    m_problem->setWordWrap(true);
    m_problem->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_problem->setStyleSheet(QStringLiteral("color: #b00020;"));
    m_problem->hide();
    m_empty->setAlignment(Qt::AlignCenter);
    m_empty->setStyleSheet(QStringLiteral("color: palette(mid);"));
    m_empty->setWordWrap(true);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(m_title);
    layout->addWidget(m_description);
    layout->addWidget(m_formHost);
    layout->addWidget(m_problem);
    layout->addWidget(m_empty);
    layout->addStretch(1);
    clear();
}

void StepForm::clear()
{
    m_row = -1;
    m_step = {};
    m_fields.clear();
    m_form = nullptr;
    // Replaced, not emptied: clear() may run inside a signal of one of the old editors.
    auto *host = new QWidget(this);
    delete layout()->replaceWidget(m_formHost, host);
    m_formHost->hide();
    m_formHost->deleteLater();
    m_formHost = host;
    m_title->hide();
    m_description->hide();
    m_formHost->hide();
    m_problem->hide();
    m_empty->show();
}

void StepForm::setStep(int row, const TransformStep &step)
{
    if (row >= 0 && row == m_row && step == m_step)
        return;
    clear();
    if (row < 0)
        return;
    m_row = row;
    m_step = step;
    rebuild();
}

void StepForm::rebuild()
{
    const TransformSignature *signature = findTransform(m_step.name);
    m_empty->hide();
    m_title->setText(m_step.name);
    m_title->show();
    m_description->setText(transformDescription(m_step.name));
    m_description->show();
    if (!signature)
        return;
    m_form = new QFormLayout(m_formHost);
    m_form->setContentsMargins(0, 4, 0, 0);
    m_form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    m_form->setRowWrapPolicy(QFormLayout::DontWrapRows);
    const QHash<QString, V> given = explicitArguments(*signature, m_step);
    for (const TransformParameter &parameter : signature->parameters)
        addField(parameter, given.value(parameter.name, parameter.defaultValue),
                 given.contains(parameter.name));
    if (signature->parameters.isEmpty()) {
        auto *none = new QLabel(tr("No parameters."), m_formHost);
        none->setStyleSheet(QStringLiteral("color: palette(mid);"));
        m_form->addRow(none);
    }
    m_formHost->show();
}

void StepForm::addField(const TransformParameter &parameter, const TransformValue &value,
                        bool explicitly)
{
    Field field;
    field.parameter = parameter;
    field.original = value;
    const V &def = parameter.defaultValue;
    const QString &name = parameter.name;
    const ParameterHint &hint = parameter.hint;
    using Hint = ParameterHint::Editor;

    // Pick the editor the transform's hint or the default's type makes obvious, if the value on
    // show fits it.
    if (!parameter.required) {
        if (def.kind == V::Kind::Enum && value.kind == V::Kind::Enum)
            field.kind = EditorKind::Interpolation;
        else if (hint.editor == Hint::Choice && value.kind == V::Kind::String
                 && hint.choices.contains(value.text))
            field.kind = EditorKind::Choice;
        else if (hint.editor == Hint::OptionalBool
                 && (value.kind == V::Kind::None || value.kind == V::Kind::Bool))
            field.kind = EditorKind::TriState;
        else if (def.kind == V::Kind::Bool && value.kind == V::Kind::Bool)
            field.kind = EditorKind::Check;
        else if (def.kind == V::Kind::Float && isNumber(value))
            field.kind = EditorKind::Float;
        else if (hint.editor == Hint::Integer && value.kind == V::Kind::Int)
            field.kind = EditorKind::Int;
        else if (isNumberPair(def) && isNumberPair(value))
            field.kind = EditorKind::Pair;
    }

    auto *host = new QWidget(m_formHost);
    auto *column = new QVBoxLayout(host);
    column->setContentsMargins(0, 0, 0, 0);
    column->setSpacing(1);
    switch (field.kind) {
    case EditorKind::Check:
        field.check = new QCheckBox(host);
        field.check->setChecked(value.boolValue);
        connect(field.check, &QCheckBox::toggled, this, &StepForm::commit);
        field.widget = field.check;
        break;
    case EditorKind::Float:
        field.first = makeDoubleSpin(host, 0.0, 1.0, 3, 0.05);
        field.first->setValue(number(value));
        connect(field.first, &QDoubleSpinBox::valueChanged, this, &StepForm::commit);
        field.widget = field.first;
        break;
    case EditorKind::Int:
        field.spin = new QSpinBox(host);
        field.spin->setRange(hint.minimum, hint.maximum);
        field.spin->setKeyboardTracking(false);
        field.spin->setValue(int(value.intValue));
        connect(field.spin, &QSpinBox::valueChanged, this, &StepForm::commit);
        field.widget = field.spin;
        break;
    case EditorKind::Pair: {
        auto *pair = new QWidget(host);
        auto *row = new QHBoxLayout(pair);
        row->setContentsMargins(0, 0, 0, 0);
        field.first = makeDoubleSpin(pair, 0.0, 1000.0, 4, 0.05);
        field.second = makeDoubleSpin(pair, 0.0, 1000.0, 4, 0.05);
        field.first->setValue(number(value.items[0]));
        field.second->setValue(number(value.items[1]));
        field.first->setToolTip(tr("min"));
        field.second->setToolTip(tr("max"));
        field.first->setPrefix(tr("min "));
        field.second->setPrefix(tr("max "));
        row->addWidget(field.first, 1);
        row->addWidget(field.second, 1);
        connect(field.first, &QDoubleSpinBox::valueChanged, this, &StepForm::commit);
        connect(field.second, &QDoubleSpinBox::valueChanged, this, &StepForm::commit);
        field.widget = pair;
        break;
    }
    case EditorKind::Interpolation:
    case EditorKind::Choice:
    case EditorKind::TriState: {
        field.combo = new QComboBox(host);
        if (field.kind == EditorKind::Interpolation) {
            field.combo->addItems(interpolationNames());
            field.combo->setCurrentText(value.text);
        } else if (field.kind == EditorKind::Choice) {
            field.combo->addItems(hint.choices);
            field.combo->setCurrentText(value.text);
        } else {
            field.combo->addItems(
                {QStringLiteral("None"), QStringLiteral("True"), QStringLiteral("False")});
            field.combo->setCurrentIndex(value.kind == V::Kind::None ? 0 : value.boolValue ? 1 : 2);
        }
        connect(field.combo, &QComboBox::currentIndexChanged, this, &StepForm::commit);
        field.widget = field.combo;
        break;
    }
    case EditorKind::Literal:
        field.line = new QLineEdit(host);
        field.line->setText(explicitly || parameter.required ? toPythonLiteral(value) : QString());
        field.line->setPlaceholderText(
            parameter.required ? tr("required") : tr("default: %1").arg(toPythonLiteral(def)));
        field.line->setClearButtonEnabled(!parameter.required);
        field.line->setFont(QFont(QStringLiteral("monospace")));
        connect(field.line, &QLineEdit::editingFinished, this, &StepForm::commit);
        field.widget = field.line;
        break;
    }
    field.widget->setObjectName(QStringLiteral("param_") + name);
    field.widget->setToolTip(parameter.required
                                 ? tr("%1 (required): a Python value").arg(name)
                                 : tr("%1, default %2").arg(name, toPythonLiteral(def)));
    column->addWidget(field.widget);
    field.error = new QLabel(host);
    field.error->setWordWrap(true);
    field.error->setStyleSheet(QStringLiteral("color: #b00020;"));
    field.error->hide();
    column->addWidget(field.error);
    m_form->addRow(name + u':', host);
    m_fields.append(field);
}

Result<std::optional<TransformValue>> StepForm::fieldValue(const Field &field) const
{
    switch (field.kind) {
    case EditorKind::Check:
        return std::optional(V::boolean(field.check->isChecked()));
    case EditorKind::Float:
        return std::optional(spinValue(field.first, field.original));
    case EditorKind::Int:
        return std::optional(V::integer(field.spin->value()));
    case EditorKind::Pair: {
        const V first = spinValue(field.first, field.original.items.value(0));
        const V second = spinValue(field.second, field.original.items.value(1));
        return std::optional(field.original.kind == V::Kind::List ? V::list({first, second})
                                                                  : V::tuple({first, second}));
    }
    case EditorKind::Interpolation:
        return std::optional(V::interpolation(field.combo->currentText()));
    case EditorKind::Choice:
        return std::optional(V::string(field.combo->currentText()));
    case EditorKind::TriState:
        return std::optional(field.combo->currentIndex() == 0
                                 ? V::none()
                                 : V::boolean(field.combo->currentIndex() == 1));
    case EditorKind::Literal: {
        const QString text = field.line->text().trimmed();
        if (text.isEmpty()) {
            if (field.parameter.required)
                return Error{tr("%1 is required").arg(field.parameter.name)};
            return std::optional<V>();
        }
        Result<V> value = parsePythonLiteral(text);
        if (!value)
            return value.error();
        return std::optional(std::move(value).value());
    }
    }
    return std::optional<V>();
}

void StepForm::commit()
{
    if (m_row < 0)
        return;
    TransformStep edited;
    edited.name = m_step.name;
    bool ok = true; // false: a required value is missing
    for (Field &field : m_fields) {
        const Result<std::optional<V>> value = fieldValue(field);
        field.error->setVisible(!value.ok());
        if (field.line)
            field.line->setStyleSheet(value.ok() ? QString()
                                                 : QStringLiteral("border: 1px solid #d04040;"));
        if (!value)
            field.error->setText(value.errorMessage());
        if (!value && field.parameter.required && field.original.kind == V::Kind::None) {
            ok = false;
            continue;
        }
        if (value && !value->has_value())
            continue;
        // A field that does not parse keeps its last good value, so other fields still apply.
        const V v = value ? *value.value() : field.original;
        if (field.parameter.required)
            edited.args.append({QString(), v});
        else
            edited.args.append({field.parameter.name, v});
    }
    if (!ok)
        return;
    const Result<TransformStep> normalized = normalizeStep(edited);
    if (!normalized) {
        setProblem(normalized.errorMessage());
        return;
    }
    if (normalized.value() == m_step)
        return;
    m_step = normalized.value();
    // The values on show are now the step's; keep them as the reference for rounding.
    const TransformSignature *signature = findTransform(m_step.name);
    const QHash<QString, V> given = explicitArguments(*signature, m_step);
    for (Field &field : m_fields)
        field.original = given.value(field.parameter.name, field.parameter.defaultValue);
    Q_EMIT stepEdited(m_row, m_step);
}

void StepForm::setProblem(const QString &message)
{
    m_problem->setText(message);
    m_problem->setVisible(!message.isEmpty() && m_row >= 0);
}

QString StepForm::problem() const
{
    return m_problem->isVisible() ? m_problem->text() : QString();
}

QWidget *StepForm::editor(const QString &parameter) const
{
    for (const Field &field : m_fields)
        if (field.parameter.name == parameter)
            return field.widget;
    return nullptr;
}

QString StepForm::fieldError(const QString &parameter) const
{
    for (const Field &field : m_fields)
        if (field.parameter.name == parameter)
            return field.error->isVisibleTo(this) ? field.error->text() : QString();
    return {};
}

} // namespace ifs
