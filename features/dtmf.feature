@needs-pbx-sim
@cap-dtmf
Feature: DTMF
  Scenario: alice sends digits to a voice menu
    Given alice is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When alice sends the digits 1234#
    Then the PBX received the digits 1234#
