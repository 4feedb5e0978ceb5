#pragma once

#include "base/result.h"
#include "transforms/transformspec.h"

#include <QList>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace ifs {

/// Reads one Python literal as a transform argument ("224", "(0.5, 1.0)", "None",
/// "InterpolationMode.BICUBIC"); errors say where the text stops making sense.
Result<TransformValue> parsePythonLiteral(const QString &text);

/// The parameters of one transform step as a form: typed editors where the signature's default
/// or the parameter's hint (ParameterHint) makes the type plain (check box, spin box, two spin
/// boxes for a (min, max) range, a combo box for interpolation modes and choices such as padding
/// modes), a validated Python-literal line edit otherwise.
/// Every committed change emits stepEdited() with the normalized step.
class StepForm : public QWidget
{
    Q_OBJECT

public:
    explicit StepForm(QWidget *parent = nullptr);

    /// Shows `step` (the model's row `row`). Does nothing when it is already on show, so that
    /// an edit that comes back through the model keeps the focus where it is.
    void setStep(int row, const TransformStep &step);
    void clear();
    int row() const { return m_row; }
    const TransformStep &step() const { return m_step; }

    /// Why the step cannot run (argument checks of the engine); empty hides the message.
    void setProblem(const QString &message);
    QString problem() const;

    /// The editor of a parameter (QCheckBox, QSpinBox, QDoubleSpinBox, QComboBox, QLineEdit, or
    /// a QWidget holding two QDoubleSpinBoxes); nullptr when the step has no such parameter.
    QWidget *editor(const QString &parameter) const;
    /// The error shown under a parameter's editor (a literal that does not parse).
    QString fieldError(const QString &parameter) const;

Q_SIGNALS:
    void stepEdited(int row, const ifs::TransformStep &step);

private:
    enum class EditorKind { Literal, Check, Float, Int, Pair, Interpolation, Choice, TriState };
    struct Field
    {
        TransformParameter parameter;
        EditorKind kind = EditorKind::Literal;
        TransformValue original; ///< the value on show when the editor was built
        QWidget *widget = nullptr;
        QLineEdit *line = nullptr;
        QCheckBox *check = nullptr;
        QSpinBox *spin = nullptr;
        QDoubleSpinBox *first = nullptr;
        QDoubleSpinBox *second = nullptr;
        QComboBox *combo = nullptr;
        QLabel *error = nullptr;
    };

    void rebuild();
    void addField(const TransformParameter &parameter, const TransformValue &value,
                  bool explicitly);
    /// The value a field holds now; nullopt when it holds none (empty literal: the default).
    Result<std::optional<TransformValue>> fieldValue(const Field &field) const;
    void commit();

    int m_row = -1;
    TransformStep m_step;
    QList<Field> m_fields;
    QLabel *m_title;
    QLabel *m_description;
    QWidget *m_formHost;
    QFormLayout *m_form = nullptr;
    QLabel *m_problem;
    QLabel *m_empty;
};

} // namespace ifs
