#pragma once

#include "transforms/pipelinelistview.h"
#include "transforms/pipelinemodel.h"
#include "transforms/transformadvice.h"

#include <QSize>
#include <QTimer>
#include <QWidget>

class QLabel;
class QMenu;
class QPlainTextEdit;
class QSplitter;
class QToolButton;

namespace ifs {

class StepForm;

/// One pipeline (Train or Val) edited two ways that stay in sync: a list of steps with a
/// parameter form, and the Python code (`transforms.Compose([...])`).
///
/// Editing the list rewrites the code (disabled steps become commented-out lines). Editing the
/// code re-parses it after a short pause: valid code updates the list; invalid code shows the
/// parser's error (line, column, caret) under the editor, marks the spot, and leaves both the
/// text and the last valid pipeline alone.
class PipelineEditor : public QWidget
{
    Q_OBJECT

public:
    /// `title` names the pipeline for people ("Train").
    explicit PipelineEditor(const QString &title, QWidget *parent = nullptr);
    QString title() const { return m_title; }
    ~PipelineEditor() override;

    /// Replaces the steps and rewrites the code.
    void setItems(const PipelineItems &items);
    const PipelineItems &items() const;
    /// The steps that run.
    TransformPipeline pipeline() const;
    /// Replaces the steps that run, keeping disabled steps in place (a fix, new statistics).
    void setPipeline(const TransformPipeline &pipeline);

    /// The code on show (maybe invalid while the user types).
    QString code() const;
    /// Puts text into the code view as if typed, and parses it at once.
    void setCode(const QString &code);
    /// Parses the code view now instead of after the pause.
    void applyCodeNow();
    /// The parser's message for the code on show; empty when it is valid.
    QString codeError() const { return m_codeErrorText; }
    /// The code to save: the text on show when valid, else the last valid steps as code.
    QString sourceToSave() const;

    /// Findings of reviewPipeline() for this pipeline (steps count enabled steps only).
    void setAdvice(const QList<PipelineAdvice> &advice);
    /// What new steps' required arguments default to (sizes fit the dataset's images).
    void setDatasetHints(QSize typicalSize, bool gray);

    void selectStep(int row);
    int selectedRow() const;
    void addStep(const QString &name);
    void removeSelectedStep();
    void moveSelectedStep(int delta);

    PipelineModel *model() const { return m_model; }
    PipelineListView *stepList() const { return m_list; }
    StepForm *form() const { return m_form; }
    QPlainTextEdit *codeEdit() const { return m_code; }
    QLabel *codeErrorLabel() const { return m_codeError; }
    QSplitter *splitter() const { return m_splitter; }
    QMenu *addMenu() const { return m_addMenu; }

Q_SIGNALS:
    /// The steps changed (list, form, valid code, setItems/setPipeline).
    void pipelineChanged();
    /// The code became invalid (message) or valid again (empty).
    void codeErrorChanged(const QString &message);
    void stepSelected(int row);

private:
    void buildAddMenu();
    void onItemsEdited();
    void writeCode();
    void parseCode();
    void showCodeError(const QString &message);
    void updateProblems();
    void updateForm();
    void updateButtons();
    TransformStep newStep(const QString &name) const;

    QString m_title;
    PipelineModel *m_model;
    PipelineListView *m_list;
    StepForm *m_form;
    QPlainTextEdit *m_code;
    QLabel *m_codeError;
    QLabel *m_listHint;
    QSplitter *m_splitter;
    QMenu *m_addMenu;
    QToolButton *m_addButton;
    QToolButton *m_removeButton;
    QToolButton *m_upButton;
    QToolButton *m_downButton;
    QTimer m_codeTimer;
    bool m_writingCode = false;
    QString m_codeErrorText;
    QSize m_typicalSize;
    bool m_gray = false;
};

} // namespace ifs
