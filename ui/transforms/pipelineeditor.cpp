#include "transforms/pipelineeditor.h"

#include "transforms/stepform.h"
#include "transforms/transforms.h"

#include <QAction>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QScrollArea>
#include <QSplitter>
#include <QTextBlock>
#include <QToolButton>
#include <QVBoxLayout>

namespace ifs {

namespace {

using V = TransformValue;

/// Line and column (1-based) of a parser message "... at line L, column C ...", or {0, 0}.
std::pair<int, int> errorPosition(const QString &message)
{
    static const QRegularExpression where(QStringLiteral("at line (\\d+), column (\\d+)"));
    const QRegularExpressionMatch match = where.match(message);
    if (!match.hasMatch())
        return {0, 0};
    return {match.captured(1).toInt(), match.captured(2).toInt()};
}

} // namespace

PipelineEditor::PipelineEditor(const QString &title, QWidget *parent)
    : QWidget(parent)
    , m_title(title)
    , m_model(new PipelineModel(this))
    , m_list(new PipelineListView(this))
    , m_form(new StepForm(this))
    , m_code(new QPlainTextEdit(this))
    , m_codeError(new QLabel(this))
    , m_listHint(new QLabel(this))
    , m_splitter(new QSplitter(Qt::Vertical, this))
    , m_addMenu(new QMenu(this))
    , m_addButton(new QToolButton(this))
    , m_removeButton(new QToolButton(this))
    , m_upButton(new QToolButton(this))
    , m_downButton(new QToolButton(this))
{
    setObjectName(QStringLiteral("pipelineEditor"));
    m_list->setObjectName(QStringLiteral("stepList"));
    m_list->setModel(m_model);
    m_list->setMinimumHeight(120);

    buildAddMenu();
    m_addButton->setText(tr("Add Step"));
    m_addButton->setToolTip(tr("Add a transform after the selected step (Insert)"));
    m_addButton->setMenu(m_addMenu);
    m_addButton->setPopupMode(QToolButton::InstantPopup);
    m_addButton->setToolButtonStyle(Qt::ToolButtonTextOnly);
    m_addButton->setObjectName(QStringLiteral("addStepButton"));
    m_removeButton->setText(tr("Remove"));
    m_removeButton->setToolTip(tr("Remove the selected step (Delete)"));
    m_upButton->setArrowType(Qt::UpArrow);
    m_upButton->setToolTip(tr("Move the selected step up (Ctrl+Up)"));
    m_downButton->setArrowType(Qt::DownArrow);
    m_downButton->setToolTip(tr("Move the selected step down (Ctrl+Down)"));
    for (QToolButton *button : {m_addButton, m_removeButton, m_upButton, m_downButton})
        button->setAutoRaise(true);
    connect(m_removeButton, &QToolButton::clicked, this, &PipelineEditor::removeSelectedStep);
    connect(m_upButton, &QToolButton::clicked, this, [this] { moveSelectedStep(-1); });
    connect(m_downButton, &QToolButton::clicked, this, [this] { moveSelectedStep(1); });
    connect(m_list, &PipelineListView::removeRequested, this, &PipelineEditor::removeSelectedStep);
    connect(m_list, &PipelineListView::moveRequested, this, &PipelineEditor::moveSelectedStep);
    connect(m_list, &PipelineListView::addRequested, this, [this] {
        m_addMenu->popup(m_list->viewport()->mapToGlobal(
            m_list->currentIndex().isValid()
                ? m_list->visualRect(m_list->currentIndex()).bottomLeft()
                : QPoint(0, 0)));
    });

    m_listHint->setText(tr("Tick to run a step; drag or Ctrl+↑/↓ to reorder."));
    m_listHint->setStyleSheet(QStringLiteral("color: palette(mid);"));
    m_listHint->setWordWrap(true);

    auto *listBox = new QWidget(this);
    auto *listLayout = new QVBoxLayout(listBox);
    listLayout->setContentsMargins(0, 0, 0, 0);
    listLayout->setSpacing(2);
    auto *buttons = new QHBoxLayout;
    buttons->setSpacing(2);
    buttons->addWidget(m_addButton);
    buttons->addWidget(m_removeButton);
    buttons->addStretch(1);
    buttons->addWidget(m_upButton);
    buttons->addWidget(m_downButton);
    listLayout->addLayout(buttons);
    listLayout->addWidget(m_list, 1);
    listLayout->addWidget(m_listHint);

    auto *formScroll = new QScrollArea(this);
    formScroll->setWidget(m_form);
    formScroll->setWidgetResizable(true);
    formScroll->setFrameShape(QFrame::StyledPanel);
    formScroll->setMinimumHeight(90);

    QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
    m_code->setObjectName(QStringLiteral("codeEdit"));
    m_code->setFont(mono);
    m_code->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_code->setTabChangesFocus(true);
    m_code->setPlaceholderText(
        QStringLiteral("transforms.Compose([\n    transforms.ToTensor(),\n])"));
    m_code->setToolTip(tr("The pipeline as Python. Edits apply when they parse; a step on a "
                          "commented-out line (# transforms.X(...),) is kept, disabled."));
    m_codeError->setObjectName(QStringLiteral("codeError"));
    m_codeError->setFont(mono);
    m_codeError->setTextFormat(Qt::PlainText);
    m_codeError->setWordWrap(false);
    m_codeError->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_codeError->setStyleSheet(QStringLiteral("QLabel { color: #8a1020; background: #fde7e7; "
                                              "border: 1px solid #e08a8a; border-radius: 3px; "
                                              "padding: 4px; }"));
    m_codeError->hide();
    auto *codeTitle = new QLabel(tr("Python"), this);
    codeTitle->setStyleSheet(QStringLiteral("font-weight: bold;"));
    auto *codeHint = new QLabel(tr("edits apply as you type; # comments a step out"), this);
    codeHint->setStyleSheet(QStringLiteral("color: palette(mid);"));
    auto *codeBox = new QWidget(this);
    auto *codeLayout = new QVBoxLayout(codeBox);
    codeLayout->setContentsMargins(0, 0, 0, 0);
    codeLayout->setSpacing(2);
    auto *codeHeader = new QHBoxLayout;
    codeHeader->addWidget(codeTitle);
    codeHeader->addWidget(codeHint, 1);
    codeLayout->addLayout(codeHeader);
    codeLayout->addWidget(m_code, 1);
    codeLayout->addWidget(m_codeError);

    m_splitter->setObjectName(QStringLiteral("pipelineSplitter"));
    m_splitter->addWidget(listBox);
    m_splitter->addWidget(formScroll);
    m_splitter->addWidget(codeBox);
    m_splitter->setStretchFactor(0, 3);
    m_splitter->setStretchFactor(1, 3);
    m_splitter->setStretchFactor(2, 3);
    m_splitter->setChildrenCollapsible(false);
    m_splitter->setSizes({190, 240, 170});
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_splitter);

    m_codeTimer.setSingleShot(true);
    m_codeTimer.setInterval(400);
    connect(&m_codeTimer, &QTimer::timeout, this, &PipelineEditor::parseCode);
    connect(m_code, &QPlainTextEdit::textChanged, this, [this] {
        if (!m_writingCode)
            m_codeTimer.start();
    });
    connect(m_model, &PipelineModel::itemsEdited, this, &PipelineEditor::onItemsEdited);
    connect(m_model, &QAbstractItemModel::dataChanged, this, &PipelineEditor::updateForm);
    connect(m_model, &QAbstractItemModel::modelReset, this, &PipelineEditor::updateButtons);
    connect(m_model, &QAbstractItemModel::rowsMoved, this, &PipelineEditor::updateButtons);
    connect(m_list->selectionModel(), &QItemSelectionModel::currentChanged, this, [this] {
        updateForm();
        updateButtons();
        Q_EMIT stepSelected(selectedRow());
    });
    connect(m_form, &StepForm::stepEdited, this,
            [this](int row, const TransformStep &step) { m_model->setStep(row, step); });
    writeCode();
    updateButtons();
}

PipelineEditor::~PipelineEditor() = default;

void PipelineEditor::buildAddMenu()
{
    m_addMenu->setObjectName(QStringLiteral("addStepMenu"));
    m_addMenu->setToolTipsVisible(true);
    // A section per category, its transforms in the registry's order.
    for (const TransformCategory category : transformCategories()) {
        m_addMenu->addSection(transformCategoryTitle(category));
        for (const TransformDefinition *definition : transformDefinitions()) {
            if (definition->category != category)
                continue;
            const QString name = definition->name;
            QAction *action
                = m_addMenu->addAction(name + QStringLiteral("  —  ") + definition->description,
                                       this, [this, name] { addStep(name); });
            action->setObjectName(QStringLiteral("add_") + name);
            action->setToolTip(definition->description);
        }
    }
}

void PipelineEditor::setItems(const PipelineItems &items)
{
    const int row = selectedRow();
    m_codeTimer.stop();
    m_model->setItems(items);
    writeCode();
    updateProblems();
    selectStep(std::min(row, int(items.size()) - 1));
    updateButtons();
    Q_EMIT pipelineChanged();
}

const PipelineItems &PipelineEditor::items() const
{
    return m_model->items();
}

TransformPipeline PipelineEditor::pipeline() const
{
    return m_model->pipeline();
}

void PipelineEditor::setPipeline(const TransformPipeline &pipeline)
{
    setItems(withEnabledPipeline(m_model->items(), pipeline));
}

QString PipelineEditor::code() const
{
    return m_code->toPlainText();
}

void PipelineEditor::setCode(const QString &code)
{
    m_code->setPlainText(code);
    applyCodeNow();
}

void PipelineEditor::applyCodeNow()
{
    m_codeTimer.stop();
    parseCode();
}

QString PipelineEditor::sourceToSave() const
{
    return m_codeErrorText.isEmpty() && !code().trimmed().isEmpty()
        ? code()
        : pipelineItemsToSource(m_model->items());
}

void PipelineEditor::onItemsEdited()
{
    writeCode();
    updateProblems();
    updateForm();
    updateButtons();
    Q_EMIT pipelineChanged();
}

void PipelineEditor::writeCode()
{
    const QString source = pipelineItemsToSource(m_model->items());
    if (source != m_code->toPlainText()) {
        m_writingCode = true;
        // Through a cursor, so the code view's undo can bring back what was there.
        QTextCursor cursor(m_code->document());
        cursor.select(QTextCursor::Document);
        cursor.insertText(source);
        m_writingCode = false;
    }
    showCodeError({});
}

void PipelineEditor::parseCode()
{
    const Result<PipelineItems> parsed = pipelineItemsFromSource(m_code->toPlainText());
    if (!parsed) {
        showCodeError(parsed.errorMessage());
        return;
    }
    showCodeError({});
    if (parsed.value() == m_model->items())
        return;
    const int row = selectedRow();
    m_model->setItems(parsed.value());
    updateProblems();
    selectStep(std::min(row, int(parsed->size()) - 1));
    updateButtons();
    Q_EMIT pipelineChanged();
}

void PipelineEditor::showCodeError(const QString &message)
{
    const bool changed = message != m_codeErrorText;
    m_codeErrorText = message;
    QList<QTextEdit::ExtraSelection> marks;
    if (!message.isEmpty()) {
        m_codeError->setText(message);
        const auto [line, column] = errorPosition(message);
        const QTextBlock block = m_code->document()->findBlockByNumber(line - 1);
        if (block.isValid()) {
            QTextEdit::ExtraSelection lineMark;
            lineMark.format.setBackground(QColor(0xfd, 0xe7, 0xe7));
            lineMark.format.setProperty(QTextFormat::FullWidthSelection, true);
            lineMark.cursor = QTextCursor(block);
            marks.append(lineMark);
            QTextEdit::ExtraSelection spot;
            spot.format.setUnderlineStyle(QTextCharFormat::WaveUnderline);
            spot.format.setUnderlineColor(QColor(0xd0, 0x20, 0x20));
            spot.format.setBackground(QColor(0xf5, 0xb5, 0xb5));
            QTextCursor cursor(block);
            const int at = std::clamp(column - 1, 0, std::max(0, block.length() - 1));
            cursor.setPosition(block.position() + at);
            if (at < block.length() - 1)
                cursor.movePosition(QTextCursor::NextCharacter, QTextCursor::KeepAnchor);
            spot.cursor = cursor;
            marks.append(spot);
        }
    }
    m_code->setExtraSelections(marks);
    m_codeError->setVisible(!message.isEmpty());
    if (changed)
        Q_EMIT codeErrorChanged(message);
}

void PipelineEditor::updateProblems()
{
    // Each step checked alone, so a problem is pinned on the step that has it.
    QStringList problems;
    for (const PipelineItem &item : m_model->items()) {
        const Result<CompiledPipeline> compiled
            = CompiledPipeline::compile(TransformPipeline{{item.step}});
        QString message = compiled.errorMessage();
        static const QRegularExpression stepPrefix(QStringLiteral("^Step \\d+, "));
        message.remove(stepPrefix);
        problems.append(message);
    }
    m_model->setRowProblems(problems);
}

void PipelineEditor::setAdvice(const QList<PipelineAdvice> &advice)
{
    QList<PipelineModel::RowNote> notes;
    for (const PipelineAdvice &a : advice) {
        const int row = m_model->rowOfEnabledStep(a.step);
        if (row >= 0)
            notes.append({row, int(a.severity), a.message});
    }
    m_model->setRowNotes(notes);
}

void PipelineEditor::setDatasetHints(QSize typicalSize, bool gray)
{
    m_typicalSize = typicalSize;
    m_gray = gray;
}

void PipelineEditor::updateForm()
{
    const int row = selectedRow();
    if (row < 0) {
        m_form->clear();
        return;
    }
    m_form->setStep(row, m_model->item(row).step);
    m_form->setProblem(m_model->index(row).data(PipelineModel::ProblemRole).toString());
}

void PipelineEditor::updateButtons()
{
    const int row = selectedRow();
    m_removeButton->setEnabled(row >= 0);
    m_upButton->setEnabled(row > 0);
    m_downButton->setEnabled(row >= 0 && row + 1 < m_model->rowCount());
}

void PipelineEditor::selectStep(int row)
{
    if (row < 0 || row >= m_model->rowCount()) {
        m_list->selectionModel()->clearCurrentIndex();
        m_list->clearSelection();
        updateForm();
        updateButtons();
        return;
    }
    m_list->setCurrentIndex(m_model->index(row));
    m_list->scrollTo(m_model->index(row));
    updateForm();
}

int PipelineEditor::selectedRow() const
{
    const QModelIndex current = m_list->currentIndex();
    return current.isValid() ? current.row() : -1;
}

TransformStep PipelineEditor::newStep(const QString &name) const
{
    return newTransformStep(name, DatasetHints{m_typicalSize, m_gray});
}

void PipelineEditor::addStep(const QString &name)
{
    const PipelineItems &items = m_model->items();
    int row = selectedRow() >= 0 ? selectedRow() + 1 : int(items.size());
    if (selectedRow() < 0) {
        // Without a selection, image steps go before ToTensor and tensor steps at the end.
        const TransformDefinition *definition = findDefinition(name);
        const bool tensorStep = definition && definition->input == StepInput::Tensor;
        for (int i = 0; i < items.size() && !tensorStep; ++i)
            if (items[i].step.name == u"ToTensor") {
                row = i;
                break;
            }
    }
    m_model->insertStep(row, newStep(name));
    selectStep(row);
    m_list->setFocus();
}

void PipelineEditor::removeSelectedStep()
{
    const int row = selectedRow();
    if (row < 0)
        return;
    m_model->removeStep(row);
    selectStep(std::min(row, m_model->rowCount() - 1));
}

void PipelineEditor::moveSelectedStep(int delta)
{
    const int row = selectedRow();
    const int to = row + delta;
    if (row < 0 || to < 0 || to >= m_model->rowCount())
        return;
    if (m_model->moveStep(row, to))
        selectStep(to);
}

} // namespace ifs
